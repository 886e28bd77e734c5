"""PostgreSQL runtime store for Revaer."""
