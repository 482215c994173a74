"""Management commands of ``maxsdk.integrations.django``."""
