"""The chat app: a view that pushes, a receiver that stores."""
