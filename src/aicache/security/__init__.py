"""Security: certificates, node keys, model-signing keys, rotation (all with ``cryptography``)."""
