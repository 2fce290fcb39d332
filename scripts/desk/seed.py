"""Seeds a demo site for the desk screenshots: comments over 30 days in every status, with held
reasons, on the posts `lectern post publish` made. Plain SQL on the SQLite file; the triggers of
migration 000014 keep the dashboard's counts, and the maintained counts are fixed at the end."""
import datetime
import random
import sqlite3
import sys

db = sqlite3.connect(sys.argv[1])
rng = random.Random(7)
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
posts = [row[0] for row in db.execute("SELECT id FROM posts WHERE kind = 'post' ORDER BY id")]
names = ["Rita Ramos", "Lin Chen", "Tomás Ortega", "Priya Natarajan", "Sam Okafor", "Jo Müller",
         "Ada Brennan", "Kenji Sato", "Mara Ilić", "Olu Adeyemi"]
texts = [
    "Great write-up. The part about keyset pagination finally made it click for me.",
    "I tried this on my own blog and the queue stayed fast.\nThanks for the numbers!",
    "Small correction: the second example uses the old flag name.",
    "Could you say more about how the outbox retries work when the SMTP server is down?",
    "Check out my site for cheap watches http://spam.example http://spam.example/2 http://spam.example/3",
    "This is exactly what I needed.\n\nOne question: does it work with PostgreSQL too?",
    "Buy followers now!!! http://followers.example",
]
reasons = {
    "pending": ["first comment from this author", "3 links (hold at 2 or more)",
                "moderation keyword: crypto", "first comment from this author"],
    "spam": ["form submitted too fast", "honeypot field filled in", "blocked",
             "disallowed keyword: casino"],
}
rows = []
for day in range(30, -1, -1):
    for _ in range(rng.randint(2, 9) + (6 if day < 4 else 0)):
        status = rng.choices(["approved", "pending", "spam", "trash"], [60, 12, 22, 6])[0]
        if day > 3 and status == "pending":
            status = "approved"
        at = now - datetime.timedelta(days=day, minutes=rng.randint(0, 23 * 60))
        if at > now:
            at = now - datetime.timedelta(minutes=5)
        name = rng.choice(names)
        body = rng.choice(texts[4:] if status == "spam" else texts[:4] + texts[5:6])
        reason = rng.choice(reasons[status]) if status in reasons else None
        rows.append((rng.choice(posts), name, name.split()[0].lower() + "@example.com", body,
                     "<p>" + body + "</p>", status, reason,
                     "203.0.113." + str(rng.randint(2, 250)), "Mozilla/5.0", rng.randint(1, 99999),
                     at.strftime("%Y-%m-%d %H:%M:%S"), at.strftime("%Y-%m-%d %H:%M:%S")))
rows.sort(key=lambda r: r[10])
db.executemany(
    "INSERT INTO comments (post_id, author_name, author_email, body, body_html, status, held_reason, "
    "ip, user_agent, avatar_seed, created_at, updated_at, format) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'plain')", rows)
db.execute("UPDATE comment_counts SET total = "
           "(SELECT COUNT(*) FROM comments c WHERE c.status = comment_counts.status)")
db.execute("UPDATE posts SET approved_comment_count = "
           "(SELECT COUNT(*) FROM comments c WHERE c.post_id = posts.id AND c.status = 'approved')")
db.commit()
print(f"seeded {len(rows)} comments")
