"""Selection: who is due, their reading window, which articles each gets, grouped into segments."""
