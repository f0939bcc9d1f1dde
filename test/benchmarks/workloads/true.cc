// true: exits 0 at once, like /bin/true but statically linked, so that it
// measures a runtime's start-up and tear-down and nothing else.

int main() { return 0; }
