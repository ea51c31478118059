print("pknock")
