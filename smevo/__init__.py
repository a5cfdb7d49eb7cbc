"""smevo: neuroevolution for Gymnasium with safe mutations."""
