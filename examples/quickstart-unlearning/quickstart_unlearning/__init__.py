"""quickstart-unlearning: a Flower quickstart app that forgets a client."""
