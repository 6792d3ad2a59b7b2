"""Cases: lifecycle and states, referral intake, correspondence threading, documents."""
