using SkiaSharp;

namespace MedSearch.Evaluation;

/// <summary>The ROC curve of one label at one k as a PNG, for the report folder and the HTML report.</summary>
public static class RocPlot
{
    private static readonly SKColor CurveColour = new(0x1F, 0x4E, 0xB4);
    private static readonly SKColor OperatingPointColour = new(0xD6, 0x1F, 0x1F);
    private static readonly SKColor ChanceColour = new(0x99, 0x99, 0x99);
    private static readonly SKColor GridColour = new(0xE6, 0xE6, 0xE6);
    private static readonly SKColor TextColour = new(0x22, 0x22, 0x22);

    /// <summary>
    /// DejaVu Sans cut down to Latin-1 punctuation, digits and letters (Fonts/, with its licence), embedded: SkiaSharp's
    /// NoDependencies native assets find no system font on Linux, and a hospital server may have none installed,
    /// yet a plot without axis labels cannot be read. Loaded once and kept for the life of the process.
    /// </summary>
    private static readonly Lazy<SKTypeface> Typeface = new(() =>
    {
        using var stream = typeof(RocPlot).Assembly.GetManifestResourceStream("MedSearch.Evaluation.Fonts.DejaVuSans-Basic.ttf")
            ?? throw new InvalidOperationException("the embedded plot font is missing from the assembly");
        return SKTypeface.FromStream(stream) ?? throw new InvalidOperationException("the embedded plot font could not be loaded");
    });

    public static byte[] Png(LabelReport label, int k, int width = 640, int height = 640)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 200);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 200);
        float scale = Math.Min(width, height) / 640f;
        var area = PlotArea(width, height);

        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            var typeface = Typeface.Value;
            using var font = new SKFont(typeface, 13 * scale);
            using var text = new SKPaint { Color = TextColour, IsAntialias = true };

            DrawAxes(canvas, area, width, height, scale, font, text);
            DrawTitle(canvas, label, k, width, area, scale, typeface, text);
            // The legend goes under the data so that it never hides the curve or the operating point.
            DrawLegend(canvas, label, area, scale, typeface, text);
            DrawCurve(canvas, label.Roc, width, height, scale, font, text);
            DrawOperatingPoint(canvas, label.Overall.AtOperatingPoint, width, height, scale);
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Where a point of ROC space lands in a plot of this size; the tests find the operating point with it.</summary>
    internal static SKPoint ToPixel(double falsePositiveRate, double truePositiveRate, int width, int height)
    {
        var area = PlotArea(width, height);
        return new SKPoint(area.Left + (float)falsePositiveRate * area.Width, area.Bottom - (float)truePositiveRate * area.Height);
    }

    /// <summary>Square, so that the chance line is at 45° and curves of different labels compare by eye.</summary>
    private static SKRect PlotArea(int width, int height)
    {
        float scale = Math.Min(width, height) / 640f;
        float left = 78 * scale, right = 24 * scale, top = 58 * scale, bottom = 68 * scale;
        float side = Math.Min(width - left - right, height - top - bottom);
        return SKRect.Create(left, top, side, side);
    }

    private static void DrawAxes(SKCanvas canvas, SKRect area, int width, int height, float scale, SKFont font, SKPaint text)
    {
        using var grid = new SKPaint { Color = GridColour, StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var axis = new SKPaint { Color = TextColour, StrokeWidth = 1.2f * scale, Style = SKPaintStyle.Stroke, IsAntialias = true };
        float tick = 5 * scale;
        for (int i = 0; i <= 5; i++)
        {
            double value = i * 0.2;
            var at = ToPixel(value, value, width, height);
            float x = at.X, y = at.Y;
            canvas.DrawLine(x, area.Top, x, area.Bottom, grid);
            canvas.DrawLine(area.Left, y, area.Right, y, grid);
            canvas.DrawLine(x, area.Bottom, x, area.Bottom + tick, axis);
            canvas.DrawLine(area.Left - tick, y, area.Left, y, axis);
            string label = value.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
            canvas.DrawText(label, x, area.Bottom + tick + font.Size * 1.1f, SKTextAlign.Center, font, text);
            canvas.DrawText(label, area.Left - tick - 3 * scale, y + font.Size * 0.35f, SKTextAlign.Right, font, text);
        }
        canvas.DrawRect(area, axis);

        using var titleFont = new SKFont(font.Typeface, 14 * scale);
        canvas.DrawText("1 − specificity (false positive rate)", area.MidX, area.Bottom + tick + font.Size * 1.1f + 24 * scale,
            SKTextAlign.Center, titleFont, text);
        canvas.Save();
        canvas.Translate(area.Left - tick - 40 * scale, area.MidY);
        canvas.RotateDegrees(-90);
        canvas.DrawText("Sensitivity (true positive rate)", 0, 0, SKTextAlign.Center, titleFont, text);
        canvas.Restore();

        using var chance = new SKPaint
        {
            Color = ChanceColour, StrokeWidth = 1.2f * scale, Style = SKPaintStyle.Stroke, IsAntialias = true,
            PathEffect = SKPathEffect.CreateDash([6 * scale, 5 * scale], 0),
        };
        canvas.DrawLine(area.Left, area.Bottom, area.Right, area.Top, chance);
    }

    private static void DrawTitle(SKCanvas canvas, LabelReport label, int k, int width, SKRect area, float scale, SKTypeface typeface, SKPaint text)
    {
        var auc = label.Overall.Auc is null ? "AUC n/a"
            : $"AUC {ReportFormat.Auc(label.Overall.Auc)}" + (label.Overall.AucInterval is { } ci ? $" ({ReportFormat.Interval(ci, "–")})" : "");
        var title = $"{label.Label} · k={k} · {auc}";
        // Long label names shrink the title rather than run off the image.
        using var font = new SKFont(typeface, 17 * scale) { Embolden = true };
        float room = width - 16 * scale;
        while (font.Size > 8 && font.MeasureText(title) > room) font.Size -= 1;
        canvas.DrawText(title, width / 2f, area.Top - 22 * scale, SKTextAlign.Center, font, text);
    }

    private static void DrawLegend(SKCanvas canvas, LabelReport label, SKRect area, float scale, SKTypeface typeface, SKPaint text)
    {
        var point = label.Overall.AtOperatingPoint;
        string[] lines =
        [
            "ROC curve (approximate search)",
            $"Operating point: {ReportFormat.OperatingPoint(label.OperatingPoint)}",
            $"threshold {ReportFormat.Threshold(point.Threshold)} · sens {ReportFormat.Rate(point.Sensitivity)} · spec {ReportFormat.Rate(point.Specificity)}",
        ];
        using var font = new SKFont(typeface, 12 * scale);
        float pad = 8 * scale, swatch = 22 * scale;
        float maxRoom = area.Width - 2 * pad - swatch - 2 * pad;
        while (font.Size > 7 && lines.Max(l => font.MeasureText(l)) > maxRoom) font.Size -= 0.5f;
        float lineHeight = font.Size * 1.45f;
        float boxWidth = lines.Max(l => font.MeasureText(l)) + swatch + 2 * pad;
        float boxHeight = lines.Length * lineHeight + pad;
        var box = SKRect.Create(area.Right - boxWidth - pad, area.Bottom - boxHeight - pad, boxWidth, boxHeight);
        using var fill = new SKPaint { Color = SKColors.White, Style = SKPaintStyle.Fill };
        using var border = new SKPaint { Color = ChanceColour, Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(box, fill);
        canvas.DrawRect(box, border);

        float textX = box.Left + pad + swatch, baseline = box.Top + pad / 2 + font.Size * 1.1f;
        using var curve = CurvePaint(scale);
        canvas.DrawLine(box.Left + pad, baseline - font.Size * 0.35f, textX - 6 * scale, baseline - font.Size * 0.35f, curve);
        using var dot = PointPaint();
        canvas.DrawCircle(box.Left + pad + (swatch - 6 * scale) / 2, baseline + lineHeight - font.Size * 0.35f, 4.5f * scale, dot);
        for (int i = 0; i < lines.Length; i++)
            canvas.DrawText(lines[i], textX, baseline + i * lineHeight, SKTextAlign.Left, font, text);
    }

    private static void DrawCurve(SKCanvas canvas, IReadOnlyList<RocPoint> roc, int width, int height, float scale, SKFont font, SKPaint text)
    {
        if (roc.Count == 0)
        {
            var area = PlotArea(width, height);
            canvas.DrawText("no ROC curve: the label lacks positives or negatives", area.MidX, area.MidY, SKTextAlign.Center, font, text);
            return;
        }
        // A straight segment between consecutive points is the curve itself: tied scores move both rates at once.
        using var builder = new SKPathBuilder();
        builder.AddPoly(roc.Select(p => ToPixel(p.FalsePositiveRate, p.TruePositiveRate, width, height)).ToArray(), close: false);
        using var path = builder.Detach();
        using var paint = CurvePaint(scale);
        canvas.DrawPath(path, paint);
    }

    private static void DrawOperatingPoint(SKCanvas canvas, Confusion point, int width, int height, float scale)
    {
        if (point.Sensitivity is not { } sensitivity || point.Specificity is not { } specificity) return;
        var at = ToPixel(1 - specificity, sensitivity, width, height);
        using var fill = PointPaint();
        using var ring = new SKPaint { Color = SKColors.White, Style = SKPaintStyle.Stroke, StrokeWidth = 1.5f * scale, IsAntialias = true };
        canvas.DrawCircle(at, 6.5f * scale, fill);
        canvas.DrawCircle(at, 6.5f * scale, ring);
    }

    private static SKPaint CurvePaint(float scale) => new()
    {
        Color = CurveColour, StrokeWidth = 2.5f * scale, Style = SKPaintStyle.Stroke, IsAntialias = true,
        StrokeJoin = SKStrokeJoin.Round, StrokeCap = SKStrokeCap.Round,
    };

    private static SKPaint PointPaint() => new() { Color = OperatingPointColour, Style = SKPaintStyle.Fill, IsAntialias = true };
}
