"""The two thin interfaces over `retrieval`: the staff CLI (`bot.cli`) and the Telegram bot."""
