"""Partner ballots: members, lifecycle, voting and quorum, views, chasing."""
