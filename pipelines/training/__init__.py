"""Training our own speaker-embedding student by distillation from the GE2E teacher."""
