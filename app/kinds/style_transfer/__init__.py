"""The `style_transfer` kind: reference glyphs → a style code; text in that style → glyphs."""
