"""Phoenix Channels: envelope, serializers, channel state machine and the socket session."""
