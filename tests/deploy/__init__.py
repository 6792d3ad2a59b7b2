"""The deployment files in deploy/: the systemd unit, the container, the monitoring."""
