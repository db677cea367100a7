enum _PlaceholderMicroUVTransport {}
