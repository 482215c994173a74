"""What the receiver stores."""

from django.db import models


class Message(models.Model):
    topic = models.CharField(max_length=200)
    user = models.CharField(max_length=200)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
