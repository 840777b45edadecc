using System.Text;
using MedSearch.Tests.Support;
using SkiaSharp;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// BreastMNIST images written out as PNG files with a labels.csv, the way a user would hand a folder to
/// `medsearch index`.
/// </summary>
public static class MedMnistFolder
{
    public const string BreastMnist = "medmnist/breastmnist.npz";
    private static readonly string[] BreastLabels = ["malignant", "normal_benign"];

    /// <summary>Writes the first <paramref name="count"/> training images under root/train/ and returns labels.csv's path.</summary>
    public static string WriteBreastMnist(string root, int count)
    {
        var npz = SharedData.Require(BreastMnist);
        var images = Npz.Read(npz, "train_images");
        var labels = Npz.Read(npz, "train_labels");
        int side = images.Shape[1];
        var csv = new StringBuilder("path,labels,split,index\n");
        Directory.CreateDirectory(Path.Combine(root, "train"));
        for (int i = 0; i < count; i++)
        {
            var name = $"train/{i:D4}.png";
            WriteGreyPng(Path.Combine(root, name), side, side, images.Values.AsSpan(i * side * side, side * side));
            csv.Append($"{name},{BreastLabels[labels.Values[i]]},train,{i}\n");
        }
        var csvPath = Path.Combine(root, "labels.csv");
        File.WriteAllText(csvPath, csv.ToString());
        return csvPath;
    }

    /// <summary>
    /// Writes every BreastMNIST image (train, val, test) under root/&lt;split&gt;/ and returns labels.csv's path,
    /// with the split as metadata and a sex and age per case. MedMNIST publishes no demographics: these are
    /// synthetic (sex alternating, ages spread over 0–99 by a fixed stride) so that the subgroup reports have
    /// groups to measure; they say nothing about the patients.
    /// </summary>
    public static string WriteBreastMnistSplits(string root)
    {
        var npz = SharedData.Require(BreastMnist);
        var csv = new StringBuilder("path,labels,split,sex,age\n");
        int row = 0;
        foreach (var split in new[] { "train", "val", "test" })
        {
            var images = Npz.Read(npz, $"{split}_images");
            var labels = Npz.Read(npz, $"{split}_labels");
            int side = images.Shape[1];
            Directory.CreateDirectory(Path.Combine(root, split));
            for (int i = 0; i < images.Count; i++, row++)
            {
                var name = $"{split}/{i:D4}.png";
                WriteGreyPng(Path.Combine(root, name), side, side, images.Values.AsSpan(i * side * side, side * side));
                csv.Append($"{name},{BreastLabels[labels.Values[i]]},{split},{(row % 2 == 0 ? "F" : "M")},{row * 37 % 100}\n");
            }
        }
        var csvPath = Path.Combine(root, "labels.csv");
        File.WriteAllText(csvPath, csv.ToString());
        return csvPath;
    }

    public static void WriteGreyPng(string path, int width, int height, ReadOnlySpan<long> pixels)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        var span = bitmap.GetPixelSpan();
        for (int i = 0; i < pixels.Length; i++) span[i] = (byte)pixels[i];
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
