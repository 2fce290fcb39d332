DROP INDEX comments_by_email_status;
