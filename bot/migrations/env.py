"""Alembic environment for the bot's store: run on the connection `bot.question_log` hands over
(no alembic.ini, no URL here); batch mode so that SQLite, which barely has ALTER TABLE, can migrate."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
