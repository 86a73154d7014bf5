"""The federated engine on Flower: strategies, update validation, ServerApp and ClientApp."""
