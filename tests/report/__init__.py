"""The report: versions, sign-off and the submission to the National Panel."""
