import django.db.models.deletion
from django.core.files.storage import default_storage
from django.db import migrations, models

from gan.imaging import blinded_png


def store_uncompressed(apps, schema_editor):
    """PostgreSQL compresses large values (TOAST): a flat patch would take fewer pages to read than a
    textured one. EXTERNAL keeps them out of line and uncompressed, so every image costs the same."""
    if schema_editor.connection.vendor == "postgresql":
        table = apps.get_model("turing", "StudyItemImage")._meta.db_table
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN png SET STORAGE EXTERNAL")


def make_images(apps, schema_editor):
    """The blinded bytes of every item of the studies that exist already."""
    StudyItem = apps.get_model("turing", "StudyItem")
    StudyItemImage = apps.get_model("turing", "StudyItemImage")
    batch = []
    for item in StudyItem.objects.select_related("patch").iterator(chunk_size=500):
        with default_storage.open(item.patch.image.name, "rb") as handle:
            batch.append(StudyItemImage(item_id=item.pk, png=blinded_png(handle.read())))
        if len(batch) >= 500:
            StudyItemImage.objects.bulk_create(batch)
            batch = []
    StudyItemImage.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('turing', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='StudyItemImage',
            fields=[
                ('item', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='image', serialize=False, to='turing.studyitem')),
                ('png', models.BinaryField()),
            ],
        ),
        migrations.CreateModel(
            name='ImageFetch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window_start', models.DateTimeField()),
                ('count', models.PositiveIntegerField(default=1)),
                ('assignment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='turing.assignment')),
                ('item', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='turing.studyitem')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('assignment', 'item'), name='image_fetch_unique_reader_item')],
            },
        ),
        migrations.RunPython(store_uncompressed, migrations.RunPython.noop),
        migrations.RunPython(make_images, migrations.RunPython.noop),
    ]
