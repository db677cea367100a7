enum _PlaceholderMicroTransport {}
