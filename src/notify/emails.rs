//! The emails lectern sends, each an askama template folder with a subject, a plain-text part
//! and an HTML part (`templates/email/<name>/`).

use askama::Template;

/// What every email template can say about the site.
#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    pub url: String,
}

/// A rendered email: subject (one line, site title first), text and HTML.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub trait Email {
    fn kind(&self) -> &'static str;
    fn render(&self) -> askama::Result<Rendered>;
}

/// One line, no control characters: a subject can never start another header.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

macro_rules! email {
    ($data:ident, $kind:literal, $subject:literal, $text:literal, $html:literal) => {
        const _: () = {
            // Some subjects are fixed text and never read `m`.
            #[allow(dead_code)]
            #[derive(Template)]
            #[template(path = $subject)]
            struct Subject<'a> {
                m: &'a $data,
            }
            #[derive(Template)]
            #[template(path = $text)]
            struct Text<'a> {
                m: &'a $data,
            }
            #[derive(Template)]
            #[template(path = $html)]
            struct Html<'a> {
                m: &'a $data,
            }
            impl Email for $data {
                fn kind(&self) -> &'static str {
                    $kind
                }
                fn render(&self) -> askama::Result<Rendered> {
                    let subject = Subject { m: self }.render()?;
                    Ok(Rendered {
                        subject: one_line(&format!("[{}] {}", self.site.title, subject)),
                        text: Text { m: self }.render()?,
                        html: Html { m: self }.render()?,
                    })
                }
            }
        };
    };
}

/// To moderators: a comment waits for them.
pub struct Moderate {
    pub site: Site,
    pub post_title: String,
    pub post_url: String,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub ip: Option<String>,
    pub comment_text: String,
    pub reason: String,
    pub pending_count: i64,
    pub approve_url: String,
    pub spam_url: String,
    pub trash_url: String,
    pub queue_url: String,
}
email!(
    Moderate,
    "moderate",
    "email/moderate/subject.txt",
    "email/moderate/body.txt",
    "email/moderate/body.html"
);

/// To a post's author: a comment was published on their post.
pub struct NewComment {
    pub site: Site,
    pub post_title: String,
    pub comment_url: String,
    pub author_name: String,
    pub author_url: Option<String>,
    pub comment_text: String,
    pub queue_url: String,
}
email!(
    NewComment,
    "new-comment",
    "email/new_comment/subject.txt",
    "email/new_comment/body.txt",
    "email/new_comment/body.html"
);

/// To a commenter who asked: their comment was approved.
pub struct Approved {
    pub site: Site,
    pub name: String,
    pub post_title: String,
    pub comment_url: String,
    pub comment_text: String,
    pub unsubscribe_url: String,
    /// Where the commenter can see, download or erase what this site keeps about them.
    pub my_comments_url: String,
}
email!(
    Approved,
    "approved",
    "email/approved/subject.txt",
    "email/approved/body.txt",
    "email/approved/body.html"
);

/// To a commenter who asked: someone replied to them.
pub struct Reply {
    pub site: Site,
    pub name: String,
    pub post_title: String,
    pub reply_author: String,
    pub reply_text: String,
    pub reply_url: String,
    pub unsubscribe_url: String,
    /// Where the commenter can see, download or erase what this site keeps about them.
    pub my_comments_url: String,
}
email!(
    Reply,
    "reply",
    "email/reply/subject.txt",
    "email/reply/body.txt",
    "email/reply/body.html"
);

/// Double opt-in: the first time an address asks for notifications.
pub struct Confirm {
    pub site: Site,
    pub name: String,
    pub post_title: String,
    pub confirm_url: String,
    pub unsubscribe_url: String,
    /// Where the commenter can see, download or erase what this site keeps about them.
    pub my_comments_url: String,
}
email!(
    Confirm,
    "confirm",
    "email/confirm/subject.txt",
    "email/confirm/body.txt",
    "email/confirm/body.html"
);

/// A commenter asked to manage their comments: the link to the page that lists them.
pub struct MyComments {
    pub site: Site,
    pub manage_url: String,
    pub privacy_url: String,
}
email!(
    MyComments,
    "my-comments",
    "email/my_comments/subject.txt",
    "email/my_comments/body.txt",
    "email/my_comments/body.html"
);

/// A staff member forgot their password.
pub struct PasswordReset {
    pub site: Site,
    pub name: String,
    pub reset_url: String,
}
email!(
    PasswordReset,
    "password-reset",
    "email/password_reset/subject.txt",
    "email/password_reset/body.txt",
    "email/password_reset/body.html"
);

/// From the admin's mail page: does mail reach me?
pub struct TestEmail {
    pub site: Site,
    pub name: String,
    pub transport: String,
}
email!(
    TestEmail,
    "test",
    "email/test/subject.txt",
    "email/test/body.txt",
    "email/test/body.html"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_line_and_start_with_the_site_title() {
        let email = Moderate {
            site: Site {
                title: "My \"Blog\"".into(),
                url: "http://x".into(),
            },
            post_title: "Line\r\nBcc: evil@example.com".into(),
            post_url: String::new(),
            author_name: "<b>Eve</b>".into(),
            author_email: "eve@example.com".into(),
            author_url: None,
            ip: None,
            comment_text: "<script>".into(),
            reason: "first comment".into(),
            pending_count: 1,
            approve_url: String::new(),
            spam_url: String::new(),
            trash_url: String::new(),
            queue_url: String::new(),
        };
        let rendered = email.render().unwrap();
        assert!(
            rendered
                .subject
                .starts_with("[My \"Blog\"] Please moderate: \"Line Bcc: evil@example.com\"")
        );
        assert!(!rendered.subject.contains('\n') && !rendered.subject.contains('\r'));
        assert!(
            rendered.html.contains("&#60;script&#62;") || rendered.html.contains("&lt;script&gt;")
        );
        assert!(
            rendered.text.contains("<script>"),
            "plain text is not HTML-escaped"
        );
    }
}
