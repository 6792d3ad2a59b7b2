"""Mail adapters: the Mailbox protocol over Maildir, IMAP and SMTP, Microsoft Graph and EWS."""
