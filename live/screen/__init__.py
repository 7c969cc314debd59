"""Output to the screen: the window, the compositors (numpy and GL), the HUD, beat pulses, flash limiting, keys."""
