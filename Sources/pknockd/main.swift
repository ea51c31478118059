print("pknockd")
