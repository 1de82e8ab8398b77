"""Package setup, reading metadata and requirements from settings.ini as fastai's own repo does."""
from configparser import ConfigParser

import setuptools

config = ConfigParser(delimiters=["="])
config.read("settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    keywords=cfg["keywords"],
    author=cfg["author"],
    license=cfg["license"],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_packages(include=["clickbait", "clickbait.*"]),
    include_package_data=True,
    package_data={"clickbait": ["bundled/*/*", "static/*"]},
    install_requires=cfg["requirements"].split(),
    extras_require={"dev": cfg["dev_requirements"].split(), "serve": cfg["serve_requirements"].split()},
    entry_points={"console_scripts": cfg["console_scripts"].split()},
    zip_safe=False,
)
