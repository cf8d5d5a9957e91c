"""What comes back: bounces (VERP, DSN, non-standard formats), complaints (ARF), mailto
unsubscribes and providers' webhooks, read into one verdict each and applied by one policy
(suppress, count, unsubscribe, pause an edition); the bounce domain's SMTP server, files,
mailboxes and IMAP polling that bring the messages in."""
