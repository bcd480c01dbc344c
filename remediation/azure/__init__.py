"""The only layer that talks to Azure: SDK clients, context gathering, writes, redeploys."""
