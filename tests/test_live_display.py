"""The HUD as drawn on the window."""


def test_a_long_hud_line_wraps_inside_the_window():
    import pygame

    from live.screen.hud import Hud, HudState

    surface = pygame.Surface((320, 240))
    state = HudState(renderer_reason="procedural renderer (numpy, OpenGL here is a software rasteriser, too slow "
                                     "for a live window): no SDXL weights found and no GPU")
    Hud().draw(surface, state)
    pixels = pygame.surfarray.array3d(surface)
    text_rows = [y for y in range(240) if pixels[:, y].max() > 100]
    assert max(text_rows) > 100  # the reason went on below the three status lines
    assert pixels[312:, :].max() < 100  # and nothing was drawn past the right margin
