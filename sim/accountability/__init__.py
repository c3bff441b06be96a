"""accountability"""
