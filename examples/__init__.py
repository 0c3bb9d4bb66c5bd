"""Examples of programs that work with jobservice."""
