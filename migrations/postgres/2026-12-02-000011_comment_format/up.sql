-- What each comment's body is written in, so it is rendered (and re-rendered after an edit)
-- the way it was meant: comments from before formatting existed stay plain text, the form
-- writes the Markdown subset, imports from WordPress and Disqus keep their HTML.
ALTER TABLE comments ADD COLUMN format TEXT NOT NULL DEFAULT 'plain'
    CHECK (format IN ('plain', 'markdown', 'html'));
