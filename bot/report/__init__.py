"""The Rapid Review report: versions and the submission to the National Panel."""
