"""The node's health: what a load balancer or keepalived asks, and the listener answering."""
