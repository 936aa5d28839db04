"""Proxy models: embedders, embedding views stored in the database, and the light
classifiers that answer rows for the LM.
"""
