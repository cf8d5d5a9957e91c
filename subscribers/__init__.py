"""The audience: subscribers, mailing lists, subscriptions, consent and suppression."""
