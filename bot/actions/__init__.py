"""Custom actions for the Gentinfo assistant (run with ``rasa run actions --actions bot.actions``).

Actions stay thin: they read the tracker, call the domain modules in ``bot.core`` and utter.
"""
