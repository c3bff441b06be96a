"""presentation: the web page (plsim app) and what it shows"""
