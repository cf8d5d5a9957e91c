"""Providers' event webhooks (SES through SNS, Postmark, SendGrid, Mailgun): verify, map."""
