"""File uploads: where the bytes live (store), what they are (content types, names), who may read them."""
