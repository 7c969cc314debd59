#version 330
// A full-screen triangle pair; v_uv runs 0..1 with v = 0 at the bottom (GL's convention).
in vec2 in_pos;
out vec2 v_uv;
void main() {
    v_uv = in_pos * 0.5 + 0.5;
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
