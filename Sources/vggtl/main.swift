print("vggtl")
