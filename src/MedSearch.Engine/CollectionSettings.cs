using System.Text.Json;
using System.Text.Json.Serialization;

namespace MedSearch.Engine;

/// <summary>
/// collection.json: what a collection was built with. Written once when the collection is created, so that a
/// later run with another encoder is refused instead of mixing embeddings that are not comparable.
/// </summary>
public sealed record CollectionSettings(
    [property: JsonPropertyName("format")] int Format,
    [property: JsonPropertyName("modelId")] string ModelId,
    [property: JsonPropertyName("dimensions")] int Dimensions,
    [property: JsonPropertyName("createdUtc")] DateTimeOffset CreatedUtc)
{
    public const int CurrentFormat = 1;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static CollectionSettings? Load(string path)
    {
        if (!File.Exists(path)) return null;
        CollectionSettings? settings;
        try
        {
            settings = JsonSerializer.Deserialize<CollectionSettings>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new CollectionException($"{path} is not valid collection settings JSON: {e.Message}", e);
        }
        if (settings is null || string.IsNullOrEmpty(settings.ModelId) || settings.Dimensions <= 0)
            throw new CollectionException($"{path} lacks modelId or dimensions");
        if (settings.Format > CurrentFormat)
            throw new CollectionException($"{path} was written by a newer MedSearch (format {settings.Format}; this version reads up to {CurrentFormat})");
        return settings;
    }

    public void Save(string path)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, Json));
        File.Move(temp, path, overwrite: true);
    }
}
