"""The OpenAI-compatible server (L5): `agentroll serve`, sessions that capture every token.

app = create_app(ServerConfig(engine="embedded", renderer="smollm2"))
"""
