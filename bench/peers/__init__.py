"""The peer servers ``bench/server_mode.py`` measures ``aimass serve`` beside: the same model file behind each."""
