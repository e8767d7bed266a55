"""The lab: the course's lessons computed live."""
