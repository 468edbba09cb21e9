-- Credentials may expire: after expires_at the token no longer authenticates (NULL: never).
ALTER TABLE api_credentials ADD COLUMN expires_at TIMESTAMPTZ;
