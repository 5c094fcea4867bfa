"""What the tests share: servers, stored-data reads, fault injection and checks (never imported by the product)."""
