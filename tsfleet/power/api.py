class Power:  # placeholder
    def __init__(self, fleet): self.fleet = fleet
