//! Writes every kind of email lectern sends, rendered with sample data, as `<kind>.html` and
//! `<kind>.txt` into a folder: `cargo run --example email_previews -- DIR`. The screenshot
//! script (`scripts/screenshots`) turns the HTML parts into the README's pictures.

use std::path::PathBuf;

use lectern::notify::emails::{
    Approved, Confirm, Email, Moderate, MyComments, NewComment, PasswordReset, Reply, Site,
    TestEmail,
};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "email-previews".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let site = Site {
        title: "Field Notes".into(),
        url: "https://blog.example.org/".into(),
    };
    let link = |path: &str| format!("https://blog.example.org{path}");
    let comment = "Great write-up. The part about keyset pagination finally made it click.\n\nOne question: does it work with PostgreSQL too?";
    let emails: Vec<Box<dyn Email>> = vec![
        Box::new(Moderate {
            site: site.clone(),
            post_title: "Keyset pagination, explained".into(),
            post_url: link("/posts/keyset-pagination"),
            author_name: "Rita Ramos".into(),
            author_email: "rita@example.com".into(),
            author_url: Some("https://rita.example.net".into()),
            ip: Some("203.0.113.7".into()),
            comment_text: comment.into(),
            reason: "first comment from this author".into(),
            pending_count: 3,
            approve_url: link("/moderate/…"),
            spam_url: link("/moderate/…"),
            trash_url: link("/moderate/…"),
            queue_url: link("/admin/comments?status=pending"),
        }),
        Box::new(NewComment {
            site: site.clone(),
            post_title: "Keyset pagination, explained".into(),
            comment_url: link("/posts/keyset-pagination#comment-12"),
            author_name: "Rita Ramos".into(),
            author_url: None,
            comment_text: comment.into(),
            queue_url: link("/admin/comments?status=approved"),
        }),
        Box::new(Approved {
            site: site.clone(),
            name: "Rita".into(),
            post_title: "Keyset pagination, explained".into(),
            comment_url: link("/posts/keyset-pagination#comment-12"),
            comment_text: comment.into(),
            unsubscribe_url: link("/unsubscribe/…"),
            my_comments_url: link("/my-comments"),
        }),
        Box::new(Reply {
            site: site.clone(),
            name: "Rita".into(),
            post_title: "Keyset pagination, explained".into(),
            reply_author: "Lin Chen".into(),
            reply_text: "It does: the same query runs on both.".into(),
            reply_url: link("/posts/keyset-pagination#comment-13"),
            unsubscribe_url: link("/unsubscribe/…"),
            my_comments_url: link("/my-comments"),
        }),
        Box::new(Confirm {
            site: site.clone(),
            name: "Rita".into(),
            post_title: "Keyset pagination, explained".into(),
            confirm_url: link("/confirm/…"),
            unsubscribe_url: link("/unsubscribe/…"),
            my_comments_url: link("/my-comments"),
        }),
        Box::new(PasswordReset {
            site: site.clone(),
            name: "Ada".into(),
            reset_url: link("/admin/password-reset/…"),
        }),
        Box::new(TestEmail {
            site: site.clone(),
            name: "Ada".into(),
            transport: "smtp.example.org".into(),
        }),
        Box::new(MyComments {
            site,
            manage_url: link("/my-comments/…"),
            privacy_url: link("/privacy"),
        }),
    ];
    for email in emails {
        let rendered = email.render()?;
        std::fs::write(dir.join(format!("{}.html", email.kind())), rendered.html)?;
        std::fs::write(
            dir.join(format!("{}.txt", email.kind())),
            format!("Subject: {}\n\n{}", rendered.subject, rendered.text),
        )?;
        println!("{}", email.kind());
    }
    Ok(())
}
